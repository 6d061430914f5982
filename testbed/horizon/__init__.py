"""The price of myopia: the best placement sequence knowing the future, and regret."""
